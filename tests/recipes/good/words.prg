echo plain.word under_score dash-ed a/b:c@d+e=f,g
echo $var ${var} pre${var}post $a$b
echo "two words" "quote \" inside" "dollar \$5" "back\\slash" "keep \n as is"
echo "$vcname-${num_compute}x" ""
echo allocate fix via boot wait set param echo include run all frontend compute timeout console
echo compute[0] {braces} 100% a#comment-not-part-of-the-word
