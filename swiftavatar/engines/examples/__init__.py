"""Example engines for engine authors (docs/engines.md). Not registered: name them by target,
e.g. `--engine swiftavatar.engines.examples.pebble:PebbleEngine`."""
