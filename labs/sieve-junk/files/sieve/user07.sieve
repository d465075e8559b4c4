# user07's mail filter (set up by the helpdesk, ticket 5120):
# newsletters and mailing lists go to Junk, everything else stays in the inbox.
require ["fileinto", "mailbox"];

if anyof (header :contains "List-Id" "",
          header :contains "Subject" "") {
    fileinto :create "Junk";
    stop;
}
