-- The sensor names a token may write records under, besides its label (a JSON array of strings):
-- records belong to the token that sent them, so a sensor cannot post under another's name.
ALTER TABLE tokens ADD COLUMN sensors TEXT NOT NULL DEFAULT '[]';
