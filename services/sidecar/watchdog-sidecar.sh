#!/bin/bash
# Placeholder written by the lab side so the workspace compiles; the services owner replaces it.
exec /usr/local/bin/buggy-server "$@"
