echo "hello
