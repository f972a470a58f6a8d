# The UI: start a task, then poll its status until it says SUCCESS.
# curl goes through $http_proxy when it is set, as the user's browser did.
app=$BUGPACK_SERVICE_APP_URL
task=$(curl -sf -X POST "$app/tasks") || exit 1
echo "ui: started task $task"
while :; do
  # The bug: the same URL every time, so a cache that stored the first
  # answer (PENDING) serves it forever.
  status=$(curl -sf "$app/tasks/$task") || exit 1
  echo "ui: task $task is $status"
  [ "$status" = SUCCESS ] && exit 0
  sleep 0.2
done
