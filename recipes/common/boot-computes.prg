# common/boot-computes.prg: boot every compute once the frontend is up, then wait.
#
# Needs: $compute_delay (a clock wait before the computes boot, e.g. `0` or `5m`:
# Rocks-style computes install from the frontend and must not start before it
# serves) and $compute_timeout.

wait $compute_delay
boot compute
wait compute up timeout $compute_timeout
