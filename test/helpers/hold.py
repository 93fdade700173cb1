# A separate process that holds a SQLite database open the way an application does, through Python's own
# sqlite3 module (its own SQLite build, not better-sqlite3's). Usage: python3 hold.py <db> <wal|delete>
# It opens the database (creating table `held` if missing), commits one row, prints "ready" and then obeys
# lines on stdin: "insert <n>" commits row n and prints "ok <n>"; "count" prints "count <rows>"; "exit" closes
# the connection and exits 0. A killed holder (SIGKILL) leaves its -wal and -shm as a crashed application does.
import sqlite3
import sys

path, mode = sys.argv[1], sys.argv[2]
db = sqlite3.connect(path, isolation_level=None)
db.execute('PRAGMA journal_mode=' + mode)
db.execute('PRAGMA wal_autocheckpoint=0')
db.execute('CREATE TABLE IF NOT EXISTS held(n INTEGER PRIMARY KEY, data BLOB)')
db.execute('INSERT OR REPLACE INTO held VALUES (0, randomblob(100))')
print('ready', flush=True)
for line in sys.stdin:
    words = line.split()
    if not words:
        continue
    if words[0] == 'insert':
        db.execute('INSERT INTO held VALUES (?, randomblob(2000))', (int(words[1]),))
        print('ok', words[1], flush=True)
    elif words[0] == 'count':
        print('count', db.execute('SELECT count(*) FROM held').fetchone()[0], flush=True)
    elif words[0] == 'exit':
        break
db.close()
