allocatefoo 4
