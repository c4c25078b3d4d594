"""Talking to the local system: commands with deadlines, mount tables, processes, Pacemaker's CLI tools."""
