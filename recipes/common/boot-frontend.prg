# common/boot-frontend.prg: boot the frontend and wait until it says it is up.
#
# Needs: $frontend_timeout (declare it with `param frontend_timeout = 10m`).

boot frontend
wait frontend up timeout $frontend_timeout
