; The zila installer (Debian's nsis: makensis), made by `make windows`: zila.exe in Program
; Files, the replica of this machine in %ProgramData%\zila, the service "zila" started at boot,
; firewall rules for TCP 7400 (sync) and UDP 7401 (LAN beacons) on private networks only, a
; Start-menu entry that opens the web interface, and the local group zila whose members (the
; installing user among them) may use the service. The uninstaller keeps the replica unless asked
; (a box to tick, or /PURGE: `uninstall.exe /S /PURGE`).
; A 64-bit installer (Debian's nsis ships the amd64-unicode stubs and plugins): it runs under
; wine64 alone, and on Windows it sees the 64-bit Program Files and registry without redirection.
Target amd64-unicode
!include FileFunc.nsh
!include LogicLib.nsh
SetCompressor /SOLID lzma
!ifndef OUTFILE
!define OUTFILE "zila-setup.exe"
!endif
!ifndef EXE
!define EXE "zila.exe"
!endif
Name "zila"
OutFile "${OUTFILE}"
InstallDir "$PROGRAMFILES64\zila"
RequestExecutionLevel admin
ShowInstDetails show
ShowUninstDetails show
!define DATA "$COMMONPROGRAMDATA\zila"
!define UNINST "Software\Microsoft\Windows\CurrentVersion\Uninstall\zila"
; the build's time is not in the installer: the same tree gives the same file
SetDateSave off

Page directory
Page instfiles
UninstPage uninstConfirm
UninstPage instfiles

Function .onInit
  SetShellVarContext all
  SetRegView 64
FunctionEnd

Section "zila"
  SetOutPath "$INSTDIR"
  ; an update: the running service lets go of zila.exe first ('net stop' waits until it has
  ; stopped; 'sc stop' returns at once, and a slow stop would leave zila.exe in use)
  nsExec::ExecToLog 'net stop zila'
  Sleep 1000
  File "${EXE}"
  WriteUninstaller "$INSTDIR\uninstall.exe"
  CreateDirectory "${DATA}"
  IfFileExists "${DATA}\zila.db" +2 0
    nsExec::ExecToLog '"$INSTDIR\zila.exe" -d "${DATA}" init'
  ; the service (zila service install), started now and at every boot
  nsExec::ExecToLog '"$INSTDIR\zila.exe" service uninstall'
  nsExec::ExecToLog '"$INSTDIR\zila.exe" -d "${DATA}" service install'
  nsExec::ExecToLog 'net start zila'
  ; Windows Defender Firewall: sync and beacons from private networks only (not public Wi-Fi)
  nsExec::ExecToLog 'netsh advfirewall firewall delete rule name="zila sync (TCP 7400)"'
  nsExec::ExecToLog 'netsh advfirewall firewall delete rule name="zila LAN beacons (UDP 7401)"'
  nsExec::ExecToLog 'netsh advfirewall firewall add rule name="zila sync (TCP 7400)" dir=in action=allow protocol=TCP localport=7400 profile=private program="$INSTDIR\zila.exe"'
  nsExec::ExecToLog 'netsh advfirewall firewall add rule name="zila LAN beacons (UDP 7401)" dir=in action=allow protocol=UDP localport=7401 profile=private program="$INSTDIR\zila.exe"'
  ; The local group zila: its members use the service (status, peers, sync, the web interface)
  ; without being administrators, as the group zila does on Debian. The user who started the
  ; installer joins it: the session's user (WTSQuerySessionInformation), who is not the
  ; elevated account when a clerk typed an administrator's password at the UAC prompt, and
  ; that account too. Others: 'net localgroup zila NAME /add', then sign out and in.
  nsExec::ExecToLog 'net localgroup zila /add /comment:"may use the zila service: status, sync, the web interface"'
  StrCpy $3 ""
  StrCpy $5 ""
  System::Call 'wtsapi32::WTSQuerySessionInformationW(p 0, i -1, i 5, *p .r1, *i .r2) i .r0'
  ${If} $0 <> 0
    System::Call 'kernel32::lstrcpynW(w .r3, p r1, i 256)'
    System::Call 'wtsapi32::WTSFreeMemory(p r1)'
  ${EndIf}
  System::Call 'wtsapi32::WTSQuerySessionInformationW(p 0, i -1, i 7, *p .r1, *i .r2) i .r0'
  ${If} $0 <> 0
    System::Call 'kernel32::lstrcpynW(w .r5, p r1, i 256)'
    System::Call 'wtsapi32::WTSFreeMemory(p r1)'
  ${EndIf}
  DetailPrint "the session's user: $5\$3"
  ${If} $5 != ""
  ${AndIf} $3 != ""
  ${AndIf} $3 != "SYSTEM"
    nsExec::ExecToLog 'net localgroup zila "$5\$3" /add'
  ${ElseIf} $3 != ""
  ${AndIf} $3 != "SYSTEM"
    nsExec::ExecToLog 'net localgroup zila "$3" /add'
  ${EndIf}
  UserInfo::GetName
  Pop $4
  ${If} $4 != ""
  ${AndIf} $4 != $3
  ${AndIf} $4 != "SYSTEM"
    nsExec::ExecToLog 'net localgroup zila "$4" /add'
  ${EndIf}
  ; the Start menu: the web interface (zila open, with the user's ordinary rights: the service
  ; lets the group zila in), and the replica's folder
  CreateDirectory "$SMPROGRAMS\zila"
  CreateShortCut "$SMPROGRAMS\zila\zila.lnk" "$INSTDIR\zila.exe" '-d "${DATA}" open' "$INSTDIR\zila.exe" 0 SW_SHOWMINIMIZED
  CreateShortCut "$SMPROGRAMS\zila\zila data folder.lnk" "${DATA}"
  CreateShortCut "$SMPROGRAMS\zila\Uninstall zila.lnk" "$INSTDIR\uninstall.exe"
  WriteRegStr HKLM "${UNINST}" "DisplayName" "zila"
  WriteRegStr HKLM "${UNINST}" "UninstallString" '"$INSTDIR\uninstall.exe"'
  WriteRegStr HKLM "${UNINST}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKLM "${UNINST}" "Publisher" "zila"
  WriteRegDWORD HKLM "${UNINST}" "NoModify" 1
  WriteRegDWORD HKLM "${UNINST}" "NoRepair" 1
SectionEnd

Function un.onInit
  SetShellVarContext all
  SetRegView 64
FunctionEnd

Section "Uninstall"
  nsExec::ExecToLog '"$INSTDIR\zila.exe" service uninstall'
  nsExec::ExecToLog 'netsh advfirewall firewall delete rule name="zila sync (TCP 7400)"'
  nsExec::ExecToLog 'netsh advfirewall firewall delete rule name="zila LAN beacons (UDP 7401)"'
  Delete "$SMPROGRAMS\zila\*.lnk"
  RMDir "$SMPROGRAMS\zila"
  Delete "$INSTDIR\zila.exe"
  Delete "$INSTDIR\uninstall.exe"
  RMDir "$INSTDIR"
  DeleteRegKey HKLM "${UNINST}"
  ; The replica holds this laptop's records and its device key: kept unless asked (/PURGE;
  ; a silent uninstall, /S, without /PURGE keeps it).
  ${un.GetParameters} $R0
  ClearErrors
  ${un.GetOptions} $R0 "/PURGE" $R1
  IfErrors 0 wipe
  IfSilent keep
  MessageBox MB_YESNO|MB_DEFBUTTON2|MB_ICONEXCLAMATION "Also delete this laptop's zila records in ${DATA}?$\r$\n$\r$\nChanges not yet sent to HQ are lost, and the laptop must be enrolled again. Choose No to keep them (a later install uses them again)." IDYES wipe IDNO keep
  wipe:
    ; the group zila goes with the replica (a kept replica keeps its users' access)
    nsExec::ExecToLog 'net localgroup zila /delete'
    RMDir /r "${DATA}"
    Goto done
  keep:
    DetailPrint "kept the replica in ${DATA}"
  done:
SectionEnd
