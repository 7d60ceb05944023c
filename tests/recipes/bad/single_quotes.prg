echo 'single'
