
# CRLF line endings, comments and separators
;allocate 2;

boot frontend ; ; wait 5m # trailing comment
  echo "indented"  
;;
