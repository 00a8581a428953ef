"""Steve: a distributed order management rules engine with a playbook language.

The library lives in `dsl` (the language) and `engine` (routing); `server`
is the HTTP service; this package holds the `steve` command line.
"""

__version__ = "0.1.0"
