# The whole path again, every program talking to Redis over its Unix socket
# (redis_url unix:/path).
REDIS_VIA=unix
. "$(dirname "$0")/pipeline.sh"
