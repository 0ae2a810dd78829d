"""A name -> entry table, the form of every extension point (methods, encoders, corpora)."""


class Registry:
    """Entries with a `name` attribute, registered once each and looked up by name."""

    def __init__(self, kind):
        self.kind = kind
        self._entries = {}

    def register(self, entry):
        """Adds `entry`; a second entry of the same name is an error. Returns the entry."""
        if entry.name in self._entries:
            raise ValueError(f"a {self.kind} named {entry.name!r} is already registered")
        self._entries[entry.name] = entry
        return entry

    def get(self, name):
        if name not in self._entries:
            raise ValueError(f"unknown {self.kind} {name!r}; registered: {', '.join(self.names())}")
        return self._entries[name]

    def names(self):
        return tuple(sorted(self._entries))
