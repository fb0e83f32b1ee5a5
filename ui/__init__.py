"""Faces of massagectl: the command line, the terminal view, the live window."""
