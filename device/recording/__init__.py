"""Recording folders (write, read) and trace files."""
