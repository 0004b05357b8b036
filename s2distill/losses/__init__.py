"""Training losses beyond TRL's SFT cross-entropy, one file each."""
