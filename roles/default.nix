# The roles a host can take, listed by name in hosts/inventory.nix. Roles compose: one box may take all
# three. Where two roles would make different choices for the same thing, the role that needs it more wins
# by priority (data-processing's PostgreSQL over the workstation's SQLite default), and an explicit choice
# that contradicts another role fails with an assertion that names both and says what to change.
{
  imports = [
    ./data-processing.nix
    ./ai-deploy.nix
    ./research-workstation.nix
  ];
}
