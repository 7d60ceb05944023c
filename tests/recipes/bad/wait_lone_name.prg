wait five
