"""Checkpoint key maps and loaders for every layout talkverse reads."""
