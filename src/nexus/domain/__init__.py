"""Pure rules of the proxy: no I/O, no clock, no framework."""
