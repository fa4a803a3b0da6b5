"""The block kinds that ship with `nas`, one module each (see `nas.search_spaces.kinds`)."""
