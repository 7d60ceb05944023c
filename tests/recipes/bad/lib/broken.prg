# a broken library
boot frontend via virt-v2v
