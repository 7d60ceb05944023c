"""What each recipe statement does: boot, fix, wait, host commands, driver scripts, seeds, handlers, scale steps, private networks."""
