# common/network-check.prg: say what the site decided, before anything boots.
#
# Shared by the bundled recipes (include "common/network-check.prg"). Reads only
# built-in variables, so it works for any VC at any site.

echo "$vcname: $num_nodes node(s); vc-out.xml at $vc_out"
