boot "frontend"
