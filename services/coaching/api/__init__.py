"""Coaching's staff API: case files and checkpoints (`cases`), volunteers and coordination (`volunteers`).

`guard` audits every route and maps refusals to HTTP errors; `views` are the typed answers.
"""
