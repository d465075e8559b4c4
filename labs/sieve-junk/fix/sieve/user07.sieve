# user07's mail filter (set up by the helpdesk, ticket 5120):
# newsletters and mailing lists go to Junk, everything else stays in the inbox.
require ["fileinto", "mailbox"];

if exists "List-Id" {
    fileinto :create "Junk";
    stop;
}
