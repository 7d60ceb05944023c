echo "cost $5"
