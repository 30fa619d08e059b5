#!/bin/sh
# Fills the @NAME@ placeholders of a deploy/ template from the environment:
#   render-config.sh TEMPLATE OUTPUT   (ROOT RUN BIN PORT WS_PORT CONFIG FCGI_PROCS ...)
set -eu
sed -e "s|@ROOT@|${ROOT}|g" -e "s|@RUN@|${RUN}|g" -e "s|@BIN@|${BIN}|g" \
    -e "s|@PORT@|${PORT}|g" -e "s|@WS_PORT@|${WS_PORT}|g" -e "s|@CONFIG@|${CONFIG}|g" \
    -e "s|@FCGI_PROCS@|${FCGI_PROCS:-2}|g" -e "s|@FCGI_PORT@|${FCGI_PORT:-9000}|g" \
    "$1" > "$2"
