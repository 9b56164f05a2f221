"""The graph IR: a parsed program laid out as steps, the form every later stage walks."""
