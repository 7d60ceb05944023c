# Shared by this folder's scripts (sourced, not a driver script: not executable).
# A test double of a pragma_boot v0.2 (2013) rocks6_client folder that ENFORCES the
# caller's conventions (bin/pragma_boot@e147501:296-325): it exits 1, as the real
# scripts did, on any other argument count, a path that is not a file, or working-folder
# state pre_fix_driver did not leave. Each call is logged to calls.log next to it:
#   SCRIPT cwd=<working folder> argc=<n> [arg1] [arg2] …
# With a file `edit-images` next to it, the scripts change the disk image as the real
# ones did (libguestfs; ~15 s each under TCG): the real-QEMU test sets it.
here=$(cd "$(dirname "$0")" && pwd)
log_call() {
    # one write per line: computes' pre_boot run side by side, and separate printfs to
    # the log interleaved their lines
    local line
    line=$(printf '%s cwd=%s argc=%s' "$(basename "$0")" "$PWD" "$#"
           for arg in "$@"; do printf ' [%s]' "$arg"; done)
    printf '%s\n' "$line" >> "$here/calls.log"
}
error() { echo "Error $1"; exit 1; }
edit_images() { [ -e "$here/edit-images" ]; }
gf() { LIBGUESTFS_BACKEND=direct LIBGUESTFS_BACKEND_SETTINGS=force_tcg guestfish "$@"; }
