set name hello
