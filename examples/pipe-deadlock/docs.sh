# The documentation builder: one line of progress per page it renders.
i=0
while [ "$i" -lt "$DOC_PAGES" ]; do
  i=$((i + 1))
  echo "docs: rendered page $i of $DOC_PAGES (reference/module_$i.html)"
done
