#!/usr/bin/env bash
# Validates the deployable artifacts: the SAM template (cfn-lint, pinned in requirements-dev.txt)
# and the state machine definition (asl-validator, pinned in package.json). The definition's
# ${...} DefinitionSubstitutions are replaced by dummy Lambda ARNs first, as CloudFormation would.
set -euo pipefail
cd "$(dirname "$0")/.."

CFN_LINT=${CFN_LINT:-.venv/bin/cfn-lint}
ASL_VALIDATOR=${ASL_VALIDATOR:-node_modules/.bin/asl-validator}
TEMPLATE=infra/template.yaml
DEFINITION=statemachine/rollback.asl.json

for tool in "$CFN_LINT" "$ASL_VALIDATOR"; do
  if [[ ! -x $tool ]]; then
    echo "validate-definitions: $tool is missing; run \`make venv\` and \`npm ci\`" >&2
    exit 2
  fi
done

echo "cfn-lint $TEMPLATE"
"$CFN_LINT" "$TEMPLATE"

substituted=$(mktemp --suffix=.asl.json)
trap 'rm -f "$substituted"' EXIT
# ${FooTopicArn} -> an SNS topic ARN, ${FooFunctionArn} -> arn:aws:lambda:us-east-1:123456789012:function:FooFunctionArn
sed -E -e 's/\$\{([A-Za-z0-9]+TopicArn)\}/arn:aws:sns:us-east-1:123456789012:\1/g' \
  -e 's/\$\{([A-Za-z0-9]+)\}/arn:aws:lambda:us-east-1:123456789012:function:\1/g' "$DEFINITION" >"$substituted"
if grep -q '\${' "$substituted"; then
  echo "validate-definitions: unreplaced \${...} left in $DEFINITION" >&2
  exit 1
fi
echo "asl-validator $DEFINITION"
"$ASL_VALIDATOR" --json-path "$substituted"
