"""Files posted with submissions: storing them, signed links, serving them.

docs/attachments.md describes the whole: what is kept, where, how hooks
and the API list files, and how a link is checked.
"""
