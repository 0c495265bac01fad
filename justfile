# avalanche-deploy: `just --list`, `just nix deploy opi03`, `just nix deploy-all`

# Recipes do not echo their command lines (the scripts say what they do).
set quiet
# A failing script says why itself; just adds no line of its own (nothing but JSON under --json).
set no-exit-message

# Nix fleet recipes: deploy, deploy-all, plan, doctor
mod nix

default:
    {{ quote(just_executable()) }} --justfile {{ quote(justfile()) }} --list --list-submodules

# Install the dependencies (npm ci).
setup:
    npm ci

# Type check and run every test (unit, and the lab ones where root and namespaces allow).
test:
    npx tsc --noEmit
    npm test
