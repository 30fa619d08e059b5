#!/bin/sh
# Fills the @NAME@ placeholders of a deploy/ template from the environment:
#   render-config.sh TEMPLATE OUTPUT   (ROOT RUN BIN PORT WS_PORT CONFIG FCGI_PROCS ...)
# The request body limit follows max_image_bytes: it is fcgi-api's own
# http_body_max (from `fcgi-api --print-config`, with the same CONFIG and
# environment fcgi-api will have), in bytes (@BODY_MAX@) or KiB (@BODY_MAX_KB@).
set -eu
BODY_MAX=$("$BIN/fcgi-api" --print-config | sed -n 's/^http_body_max=//p')
case "$BODY_MAX" in
    ''|*[!0-9]*) echo "render-config: no http_body_max from $BIN/fcgi-api --print-config" >&2; exit 1;;
esac
BODY_MAX_KB=$(( (BODY_MAX + 1023) / 1024 ))
sed -e "s|@ROOT@|${ROOT}|g" -e "s|@RUN@|${RUN}|g" -e "s|@BIN@|${BIN}|g" \
    -e "s|@PORT@|${PORT}|g" -e "s|@WS_PORT@|${WS_PORT}|g" -e "s|@CONFIG@|${CONFIG}|g" \
    -e "s|@FCGI_PROCS@|${FCGI_PROCS:-2}|g" -e "s|@FCGI_PORT@|${FCGI_PORT:-9000}|g" \
    -e "s|@BODY_MAX@|${BODY_MAX}|g" -e "s|@BODY_MAX_KB@|${BODY_MAX_KB}|g" \
    "$1" > "$2"
