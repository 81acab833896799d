#!/bin/sh
# git asks this program for the user name and the password; both come from its environment, never from argv.
case "$1" in
  Username*) printf '%s\n' "$DOCTUNE_GIT_USERNAME" ;;
  *) printf '%s\n' "$DOCTUNE_GIT_PASSWORD" ;;
esac
