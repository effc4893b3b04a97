# tools/xen-lab/common.sh - settings shared by the xen-lab scripts (sourced).
# Everything the lab makes lives under $LAB; nothing else outside the clone
# is written.
LAB=${XCP_XEN_LAB:-/tmp/xcp-xenlab}
XV=4.17
SRC=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$SRC/tools/xen-lab
# host-timestamped log lines
log() { echo "xen-lab: $*" >&2; }
die() { log "$*"; exit 1; }
# The password of root on the lab's xcpd (its --auth-file), for the host's
# `xe -s`: a lab secret, nothing else uses it.
LAB_PW=xcplab-remote
# A TCP port free on the host's loopback now (for QEMU's port forwards).
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}
