"""Links to devices, device sessions, and everything that talks to hardware or files."""
