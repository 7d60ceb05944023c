wait frontend up timeout soon
