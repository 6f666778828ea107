"""Live mode: Kafka micro-batches into the store, a mode script run on each from saved kernel state.

runner (the loop and one batch), order (which ticks are new, repeated or late), script (what a
script leaves for the store, its `-- @live` lines), books (what a script reading several
exchanges' books sees), backends (what a commit makes durable)."""
