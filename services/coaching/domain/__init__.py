"""Coaching's pure rules, no I/O: the case file (`case_file`), volunteers and their places (`volunteers`),
collective checkpoints (`checkpoint`) and the coordinators' figures (`figures`)."""
