// imapflow with `qresync: true` syncing INBOX the way a sync client does.
//
//   node imapflow_qresync.cjs HOST PORT USER PASS [STATE]
//
// Without STATE: a full sync (every UID with its flags). With STATE (the JSON
// a previous run printed): SELECT with the cached UIDVALIDITY and
// HIGHESTMODSEQ (QRESYNC), applying the `* VANISHED (EARLIER)` and FETCH
// responses imapflow reports as `expunge` and `flags` events, then fetching
// only the UIDs above the cached ones. Then LIST, for the SPECIAL-USE role of
// each folder. Prints one JSON line: the new state plus what the run saw.
'use strict';

const { ImapFlow } = require('imapflow');

const [host, port, user, pass, stateText] = process.argv.slice(2);
const cached = stateText ? JSON.parse(stateText) : null;

const flagList = flags => [...flags].filter(f => f !== '\\Recent').sort();

async function main() {
    const client = new ImapFlow({
        host,
        port: Number(port),
        secure: false,
        doSTARTTLS: false,
        auth: { user, pass },
        logger: false,
        qresync: true,
        disableAutoIdle: true
    });
    const vanished = [];
    const flagEvents = [];
    client.on('expunge', e => vanished.push({ uid: e.uid, seq: e.seq, vanished: e.vanished, earlier: !!e.earlier }));
    client.on('flags', e => flagEvents.push({ uid: e.uid, flags: flagList(e.flags) }));
    await client.connect();
    const options =
        cached && cached.highestModseq
            ? { uidValidity: BigInt(cached.uidValidity), changedSince: BigInt(cached.highestModseq) }
            : {};
    const mailbox = await client.mailboxOpen('INBOX', options);
    let messages = {};
    let mode = 'full';
    if (cached && mailbox.qresync) {
        mode = 'qresync';
        messages = { ...cached.messages };
        for (const v of vanished) {
            delete messages[v.uid];
        }
        for (const f of flagEvents) {
            if (f.uid in messages) {
                messages[f.uid] = f.flags;
            }
        }
        const top = Math.max(0, ...Object.keys(messages).map(Number));
        if (mailbox.exists > 0 && mailbox.uidNext > top + 1) {
            for await (const m of client.fetch(`${top + 1}:*`, { uid: true, flags: true }, { uid: true })) {
                if (m.uid > top) {
                    messages[m.uid] = flagList(m.flags);
                }
            }
        }
    } else if (mailbox.exists > 0) {
        for await (const m of client.fetch('1:*', { uid: true, flags: true })) {
            messages[m.uid] = flagList(m.flags);
        }
    }
    const enabled = [...client.enabled].sort();
    // SPECIAL-USE (RFC 6154): the folders imapflow finds for each role.
    const specialUse = {};
    for (const f of await client.list()) {
        if (f.specialUse) {
            // source "extension": from the server's attribute, not guessed from the name
            specialUse[f.specialUse] = `${f.path} (${f.specialUseSource})`;
        }
    }
    await client.logout();
    console.log(
        JSON.stringify({
            mode,
            enabled,
            uidValidity: mailbox.uidValidity.toString(),
            highestModseq: mailbox.highestModseq ? mailbox.highestModseq.toString() : null,
            noModseq: !!mailbox.noModseq,
            vanished,
            flagEvents,
            messages,
            specialUse
        })
    );
}

main().catch(err => {
    console.error(err);
    process.exit(1);
});
