"""POSTing JSON to one URL from a child process, so the proxy's event loop only hands bytes on."""
