set leaf = yes
