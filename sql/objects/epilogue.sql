/* this database's nonce (tables/instance.sql): rows scheduled under another one are held */
INSERT INTO broadcast.instance DEFAULT VALUES;
