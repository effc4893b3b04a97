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
