allocate four
